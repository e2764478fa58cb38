import CLapack
import RealModule

/// A dense matrix of doubles stored column-major, LAPACK's layout, so factorizations take the
/// storage as it is. Sizes here are small (4 to 12); shapes are checked by preconditions because
/// a mismatch is a defect of the caller, never a property of the data.
public struct Matrix: Equatable, Sendable, CustomStringConvertible {
    public let rows: Int
    public let cols: Int
    /// Column-major: element (i, j) is `storage[j * rows + i]`.
    public var storage: [Double]

    public init(rows: Int, cols: Int, repeating value: Double = 0) {
        self.rows = rows
        self.cols = cols
        storage = [Double](repeating: value, count: rows * cols)
    }

    /// From rows written out as in a paper: `Matrix([[1, 2], [3, 4]])`.
    public init(_ rowValues: [[Double]]) {
        rows = rowValues.count
        cols = rowValues.first?.count ?? 0
        var storage = [Double](repeating: 0, count: rows * cols)
        for (i, row) in rowValues.enumerated() {
            precondition(row.count == cols, "ragged matrix")
            for (j, value) in row.enumerated() { storage[j * rows + i] = value }
        }
        self.storage = storage
    }

    init(rows: Int, cols: Int, storage: [Double]) {
        precondition(storage.count == rows * cols)
        self.rows = rows
        self.cols = cols
        self.storage = storage
    }

    public static func identity(_ n: Int, scale: Double = 1) -> Matrix {
        var m = Matrix(rows: n, cols: n)
        for i in 0..<n { m.storage[i * n + i] = scale }
        return m
    }

    public static func diagonal(_ values: [Double]) -> Matrix {
        var m = Matrix(rows: values.count, cols: values.count)
        for (i, v) in values.enumerated() { m.storage[i * values.count + i] = v }
        return m
    }

    /// A column vector.
    public static func column(_ values: [Double]) -> Matrix {
        Matrix(rows: values.count, cols: 1, storage: values)
    }

    public subscript(i: Int, j: Int) -> Double {
        get { storage[j * rows + i] }
        set { storage[j * rows + i] = newValue }
    }

    /// Row-major nested arrays, for JSON and printing.
    public var rowArrays: [[Double]] {
        (0..<rows).map { i in (0..<cols).map { j in self[i, j] } }
    }

    public var transposed: Matrix {
        var t = Matrix(rows: cols, cols: rows)
        for j in 0..<cols {
            for i in 0..<rows { t.storage[i * cols + j] = storage[j * rows + i] }
        }
        return t
    }

    /// (M + Mᵀ) / 2: covariances drift from symmetry by rounding; this puts them back.
    public var symmetrized: Matrix {
        precondition(rows == cols)
        var s = self
        for j in 0..<cols {
            for i in 0..<j {
                let mean = (storage[j * rows + i] + storage[i * rows + j]) / 2
                s.storage[j * rows + i] = mean
                s.storage[i * rows + j] = mean
            }
        }
        return s
    }

    public var trace: Double {
        precondition(rows == cols)
        return (0..<rows).reduce(0) { $0 + storage[$1 * rows + $1] }
    }

    public var frobeniusNorm: Double { storage.reduce(0) { $0 + $1 * $1 }.squareRoot() }

    public var diagonalValues: [Double] { (0..<min(rows, cols)).map { storage[$0 * rows + $0] } }

    /// Rows `r` and columns `c` of this matrix.
    public func block(rows r: Range<Int>, cols c: Range<Int>) -> Matrix {
        var b = Matrix(rows: r.count, cols: c.count)
        for (bj, j) in c.enumerated() {
            for (bi, i) in r.enumerated() { b.storage[bj * r.count + bi] = storage[j * rows + i] }
        }
        return b
    }

    /// [A B …] side by side.
    public static func hconcat(_ parts: [Matrix]) -> Matrix {
        let rows = parts.first?.rows ?? 0
        precondition(parts.allSatisfy { $0.rows == rows })
        var storage: [Double] = []
        storage.reserveCapacity(rows * parts.reduce(0) { $0 + $1.cols })
        for part in parts { storage += part.storage }
        return Matrix(rows: rows, cols: parts.reduce(0) { $0 + $1.cols }, storage: storage)
    }

    public static func + (a: Matrix, b: Matrix) -> Matrix {
        precondition(a.rows == b.rows && a.cols == b.cols)
        var c = a
        for k in c.storage.indices { c.storage[k] += b.storage[k] }
        return c
    }

    public static func - (a: Matrix, b: Matrix) -> Matrix {
        precondition(a.rows == b.rows && a.cols == b.cols)
        var c = a
        for k in c.storage.indices { c.storage[k] -= b.storage[k] }
        return c
    }

    public static func * (s: Double, a: Matrix) -> Matrix {
        var c = a
        for k in c.storage.indices { c.storage[k] *= s }
        return c
    }

    public static func * (a: Matrix, b: Matrix) -> Matrix {
        precondition(a.cols == b.rows, "shape \(a.rows)×\(a.cols) * \(b.rows)×\(b.cols)")
        var c = Matrix(rows: a.rows, cols: b.cols)
        a.storage.withUnsafeBufferPointer { pa in
            b.storage.withUnsafeBufferPointer { pb in
                c.storage.withUnsafeMutableBufferPointer { pc in
                    for j in 0..<b.cols {
                        for k in 0..<a.cols {
                            let bkj = pb[j * b.rows + k]
                            if bkj == 0 { continue }
                            let aColumn = k * a.rows
                            let cColumn = j * a.rows
                            for i in 0..<a.rows { pc[cColumn + i] += pa[aColumn + i] * bkj }
                        }
                    }
                }
            }
        }
        return c
    }

    /// A · v for a vector v.
    public func times(_ v: [Double]) -> [Double] {
        precondition(v.count == cols)
        var out = [Double](repeating: 0, count: rows)
        for j in 0..<cols where v[j] != 0 {
            let column = j * rows
            for i in 0..<rows { out[i] += storage[column + i] * v[j] }
        }
        return out
    }

    public var description: String {
        rowArrays.map { $0.map { String($0) }.joined(separator: " ") }.joined(separator: "\n")
    }
}

/// The Cholesky factor L (lower, L Lᵀ = M) of a symmetric positive definite matrix, from
/// LAPACK's dpotrf; solves go through dpotrs. No inverse is ever formed.
public struct Cholesky: Sendable {
    public let n: Int
    /// Column-major; the lower triangle holds L.
    let factor: [Double]

    public init(_ m: Matrix) throws(ModelError) {
        precondition(m.rows == m.cols)
        n = m.rows
        var a = m.storage
        let info = LAPACKE_dpotrf(LAPACK_COL_MAJOR, Self.lower, Int32(n), &a, Int32(n))
        guard info == 0 else {
            throw ModelError(
                .notPositiveDefinite,
                info > 0
                    ? "a \(n)×\(n) covariance is not positive definite (leading minor \(info))"
                    : "dpotrf refused argument \(-info)")
        }
        factor = a
    }

    static let lower = CChar(UInt8(ascii: "L"))

    /// X with M X = B.
    public func solve(_ b: Matrix) -> Matrix {
        precondition(b.rows == n)
        var x = b.storage
        let info = LAPACKE_dpotrs(
            LAPACK_COL_MAJOR, Self.lower, Int32(n), Int32(b.cols), factor, Int32(n), &x,
            Int32(n))
        // dpotrs fails only on malformed arguments, which the preconditions rule out.
        precondition(info == 0, "dpotrs argument \(-info)")
        return Matrix(rows: b.rows, cols: b.cols, storage: x)
    }

    /// x with M x = b.
    public func solve(_ b: [Double]) -> [Double] { solve(Matrix.column(b)).storage }

    /// log det M = 2 Σ log Lᵢᵢ.
    public var logDeterminant: Double {
        (0..<n).reduce(0) { $0 + 2 * Double.log(factor[$1 * n + $1]) }
    }

    /// L · z: a draw of N(0, M) from standard normals z.
    public func lowerTimes(_ z: [Double]) -> [Double] {
        precondition(z.count == n)
        var out = [Double](repeating: 0, count: n)
        for j in 0..<n {
            let zj = z[j]
            for i in j..<n { out[i] += factor[j * n + i] * zj }
        }
        return out
    }

    /// v with Lᵀ v = z (back substitution): a draw of N(0, M⁻¹) from standard normals z when M
    /// is a precision matrix.
    public func upperTransposedSolve(_ z: [Double]) -> [Double] {
        precondition(z.count == n)
        var v = z
        for i in stride(from: n - 1, through: 0, by: -1) {
            var s = v[i]
            for k in (i + 1)..<n { s -= factor[i * n + k] * v[k] }
            v[i] = s / factor[i * n + i]
        }
        return v
    }

    /// Σ of (L⁻¹ e)²: eᵀ M⁻¹ e by one triangular solve.
    public func mahalanobis(_ e: [Double]) -> Double {
        precondition(e.count == n)
        var y = e
        for i in 0..<n {
            var s = y[i]
            for k in 0..<i { s -= factor[k * n + i] * y[k] }
            y[i] = s / factor[i * n + i]
        }
        return y.reduce(0) { $0 + $1 * $1 }
    }
}
