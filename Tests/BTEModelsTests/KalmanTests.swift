import BTEModels
import Foundation
import Testing

@Suite struct MatrixTests {
    @Test func choleskySolvesAndLogDeterminant() throws {
        // [[4, 2], [2, 3]] = L Lᵀ with L = [[2, 0], [1, √2]]; det = 8.
        let m = Matrix([[4, 2], [2, 3]])
        let chol = try Cholesky(m)
        #expect(abs(chol.logDeterminant - log(8)) < 1e-14)
        // 4x + 2y = 2, 2x + 3y = 1 → y = 0, x = 0.5.
        let x = chol.solve([2, 1])
        #expect(abs(x[0] - 0.5) < 1e-15 && abs(x[1]) < 1e-15)
        // eᵀ M⁻¹ e for e = [2, 1]: e · x = 1.
        #expect(abs(chol.mahalanobis([2, 1]) - 1) < 1e-14)
        // L z for z = [1, 1]: [2, 1 + √2].
        let lz = chol.lowerTimes([1, 1])
        #expect(abs(lz[0] - 2) < 1e-15 && abs(lz[1] - (1 + 2.0.squareRoot())) < 1e-14)
    }

    @Test func notPositiveDefiniteIsATypedError() {
        #expect(throws: ModelError.self) { try Cholesky(Matrix([[1, 2], [2, 1]])) }
        do {
            _ = try Cholesky(Matrix([[1, 2], [2, 1]]))
        } catch {
            #expect(error.code == .notPositiveDefinite)
        }
    }

    @Test func productsAndTransposes() {
        let a = Matrix([[1, 2, 3], [4, 5, 6]])
        let b = Matrix([[1, 0], [0, 1], [1, 1]])
        // [[1+3, 2+3], [4+6, 5+6]]
        #expect((a * b).rowArrays == [[4, 5], [10, 11]])
        #expect(a.transposed.rowArrays == [[1, 4], [2, 5], [3, 6]])
        #expect(a.times([1, 1, 1]) == [6, 15])
        #expect(a.block(rows: 0..<2, cols: 1..<3).rowArrays == [[2, 3], [5, 6]])
        #expect(Matrix.hconcat([b, b]).rowArrays == [[1, 0, 1, 0], [0, 1, 0, 1], [1, 1, 1, 1]])
    }
}

/// Filter and smoother against statsmodels' KalmanSmoother on the same model and series
/// (scripts/fixtures/kalman-reference.py wrote the fixture), to 1e-8 relative.
@Suite struct KalmanReferenceTests {
    struct Fixture {
        let parameters: StateSpaceParameters
        let series: StateSpaceSeries
        let logLikelihood: Double
        let filteredMeans: [[Double]]
        let filteredCovariances: [[[Double]]]
        let smoothedMeans: [[Double]]
        let smoothedCovariances: [[[Double]]]
    }

    static func fixture() throws -> Fixture {
        let url = try #require(
            Bundle.module.url(forResource: "kalman_reference", withExtension: "json", subdirectory: "Fixtures"))
        let json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        func matrix(_ key: String) throws -> Matrix { Matrix(try #require(json[key] as? [[Double]])) }
        let parameters = StateSpaceParameters(
            a: try matrix("A"), b: try matrix("B"), c: try matrix("C"), d: try matrix("D"), e: try matrix("E"),
            q: try matrix("Q"), r: try matrix("R"), initialMean: try #require(json["m0"] as? [Double]),
            initialCovariance: try matrix("P0"))
        let y = try #require(json["y"] as? [Any]).map { $0 as? [Double] }
        return Fixture(
            parameters: parameters,
            series: StateSpaceSeries(
                y: y, u: try #require(json["u"] as? [[Double]]), d: try #require(json["d"] as? [[Double]])),
            logLikelihood: try #require(json["log_likelihood"] as? Double),
            filteredMeans: try #require(json["filtered_means"] as? [[Double]]),
            filteredCovariances: try #require(json["filtered_covariances"] as? [[[Double]]]),
            smoothedMeans: try #require(json["smoothed_means"] as? [[Double]]),
            smoothedCovariances: try #require(json["smoothed_covariances"] as? [[[Double]]]))
    }

    /// |a − b| ≤ 1e-8 · max(|b|, scale): relative, with the series' own scale as the floor so
    /// entries near zero are not held to an absolute 1e-16.
    static func close(_ a: [Double], _ b: [Double], scale: Double) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { abs($0 - $1) <= 1e-8 * max(abs($1), scale) }
    }

    @Test func logLikelihoodAndFilteredStatesMatchStatsmodels() throws {
        let f = try Self.fixture()
        #expect(f.series.y.filter { $0 == nil }.count == 4)
        let result = try KalmanFilter.filter(f.parameters, f.series)
        #expect(abs(result.logLikelihood - f.logLikelihood) <= 1e-8 * abs(f.logLikelihood))
        for t in 0..<f.series.count {
            #expect(Self.close(result.filteredMeans[t], f.filteredMeans[t], scale: 1e-3), "day \(t)")
            #expect(
                Self.close(
                    result.filteredCovariances[t].rowArrays.flatMap { $0 }, f.filteredCovariances[t].flatMap { $0 },
                    scale: 1e-3), "day \(t)")
        }
    }

    @Test func smoothedStatesMatchStatsmodels() throws {
        let f = try Self.fixture()
        let filtered = try KalmanFilter.filter(f.parameters, f.series)
        let smoothed = try KalmanFilter.smooth(f.parameters, filtered)
        for t in 0..<f.series.count {
            #expect(Self.close(smoothed.means[t], f.smoothedMeans[t], scale: 1e-3), "day \(t)")
            #expect(
                Self.close(
                    smoothed.covariances[t].rowArrays.flatMap { $0 }, f.smoothedCovariances[t].flatMap { $0 },
                    scale: 1e-3), "day \(t)")
        }
    }

    @Test func aMissingDayIsPredictedNotUpdated() throws {
        let f = try Self.fixture()
        let result = try KalmanFilter.filter(f.parameters, f.series)
        // Day 10 has no KPIs: its filtered state is its prediction.
        #expect(result.filteredMeans[10] == result.predictedMeans[10])
        #expect(result.filteredCovariances[10] == result.predictedCovariances[10])
    }

    @Test func wrongShapesAndNonFiniteValuesAreTypedErrors() throws {
        let f = try Self.fixture()
        var short = f.series
        short.u.removeLast()
        #expect(throws: ModelError.self) { try KalmanFilter.filter(f.parameters, short) }
        var nan = f.series
        nan.y[3] = [0, .nan, 0, 0]
        do {
            _ = try KalmanFilter.filter(f.parameters, nan)
            Issue.record("a NaN KPI was filtered")
        } catch {
            #expect(error.code == .invalidInput)
        }
    }
}
