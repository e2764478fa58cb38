#!/usr/bin/env python3
"""Loads the dashboard in headless Chromium (Debian's chromium + chromium-driver) through
Selenium: signs in with the form, then reports what the page shows as JSON on stdout, with the
browser's console messages. The Swift test compares it with the API's answers."""
import argparse
import json
import sys

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--driver", default="/usr/bin/chromedriver")
    args = parser.parse_args()

    options = webdriver.ChromeOptions()
    options.binary_location = args.chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--window-size=1280,2000", "--no-first-run", "--disable-extensions"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(args.driver), options=options)
    try:
        driver.set_page_load_timeout(30)
        driver.get(args.url + "/dashboard")
        signed_out = driver.find_element(By.TAG_NAME, "form") is not None
        # The sign-in page answers 401 (no credentials yet), which Chromium logs; kept apart.
        sign_in_console = [{"level": e.get("level"), "message": e.get("message")} for e in driver.get_log("browser")]
        field = driver.find_element(By.NAME, "key")
        field.send_keys(args.key)
        field.submit()
        WebDriverWait(driver, 30).until(EC.presence_of_element_located((By.ID, "signals")))
        signals = {}
        for row in driver.find_elements(By.CSS_SELECTOR, "#signals tr[data-signal]"):
            svg = row.find_element(By.CSS_SELECTOR, "svg.sparkline")
            line = svg.find_element(By.TAG_NAME, "polyline")
            points = [p for p in (line.get_attribute("points") or "").split(" ") if p]
            signals[row.get_attribute("data-signal")] = {
                "value": row.find_element(By.CSS_SELECTOR, ".signal-value").get_attribute("data-value"),
                "text": row.find_element(By.CSS_SELECTOR, ".signal-value").text,
                "points": len(points),
                "chart_width": svg.rect["width"],
                "chart_height": svg.rect["height"],
                "chart_displayed": svg.is_displayed(),
            }
        result = {
            "signed_out_form": signed_out,
            "sign_in_console": sign_in_console,
            "title": driver.title,
            "workspace": driver.find_element(By.ID, "workspace").text,
            "ingest_rate": driver.find_element(By.ID, "ingest-rate").text,
            "freshness": driver.find_element(By.ID, "freshness").text,
            "signals": signals,
            "insights": [r.get_attribute("data-insight")
                         for r in driver.find_elements(By.CSS_SELECTOR, "#insights tr[data-insight]")],
            "groups": [r.get_attribute("data-group")
                       for r in driver.find_elements(By.CSS_SELECTOR, "#lag tr[data-group]")],
            "console": [{"level": e.get("level"), "message": e.get("message")} for e in driver.get_log("browser")],
        }
        print(json.dumps(result, sort_keys=True))
        return 0
    finally:
        driver.quit()


if __name__ == "__main__":
    sys.exit(main())
