#!/usr/bin/env python3
"""Open a Horde report page in Debian's headless Chromium (through Debian's
chromidriver, with Selenium) and say what a person would see: console
errors, every network request, which charts drew nothing, the data the page
embeds, the request table, and the table after dragging across a chart to
select a time range. Prints one JSON document; the Rust tests judge it.

usage: check_page.py URL [--screenshot PNG]
       check_page.py URL --live USERS [--screenshot PNG]

With --live, the page is the web UI of a running `horde run --web`: wait
for its updates, set the users to USERS with the page's own control, wait
until the run reports that many, then press Stop and wait for the end.
"""
import json
import sys
import tempfile
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

# Pixels of a canvas that are not fully transparent.
PAINTED = """
const canvas = arguments[0];
const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
let painted = 0;
for (let i = 3; i < data.length; i += 4) if (data[i] !== 0) painted++;
return painted;
"""

TABLE = """
return [...document.querySelectorAll('#stats tbody tr')].map(
  (tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent));
"""


def start(user_data):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in [
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-default-apps", "--window-size=1400,2000", f"--user-data-dir={user_data}",
    ]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def wait_for(driver, script, seconds):
    deadline = time.time() + seconds
    while time.time() < deadline:
        value = driver.execute_script(script)
        if value:
            return value
        time.sleep(0.2)
    return driver.execute_script(script)


def painted_charts(driver):
    painted = {}
    for chart in driver.find_elements(By.CSS_SELECTOR, ".chart"):
        canvases = chart.find_elements(By.TAG_NAME, "canvas")
        painted[chart.get_attribute("id")] = sum(driver.execute_script(PAINTED, c) for c in canvases)
    return painted


def live(driver, users, screenshot):
    """Drive the web UI: users change, then Stop."""
    result = {}
    result["updates"] = wait_for(driver, "return window.horde && window.horde.updates >= 2 && window.horde.updates", 30)
    result["users_before"] = driver.execute_script("return window.horde.data.live.users")
    field = driver.find_element(By.ID, "users")
    field.clear()
    field.send_keys(str(users))
    driver.find_element(By.ID, "apply-users").click()
    result["reported_users"] = wait_for(
        driver, f"const u = window.horde.data.series.users; return u[u.length - 1] === {users} && u[u.length - 1]", 30)
    result["live_users"] = driver.execute_script("return window.horde.data.live.users")
    result["charts"] = painted_charts(driver)
    result["table"] = driver.execute_script(TABLE)
    if screenshot:
        driver.save_screenshot(screenshot)
    driver.find_element(By.ID, "stop").click()
    result["final_state"] = wait_for(
        driver, "return window.horde.data.live.state === 'finished' && 'finished'", 30)
    result["exit_code_text"] = driver.find_element(By.ID, "exit-code").text
    result["message"] = driver.find_element(By.ID, "control-message").text
    return result


def main():
    url = sys.argv[1]
    screenshot = sys.argv[sys.argv.index("--screenshot") + 1] if "--screenshot" in sys.argv else None
    with tempfile.TemporaryDirectory() as user_data:
        driver = start(user_data)
        try:
            # What the browser fetched for itself before the page (its new
            # tab page) is not the page's.
            driver.get("about:blank")
            driver.get_log("performance")
            driver.get(url)
            if "--live" in sys.argv:
                users = int(sys.argv[sys.argv.index("--live") + 1])
                result = live(driver, users, screenshot)
                result["console"] = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
                result["requests"] = [
                    m["params"]["request"]["url"]
                    for m in (json.loads(e["message"])["message"] for e in driver.get_log("performance"))
                    if m.get("method") == "Network.requestWillBeSent"
                ]
                json.dump(result, sys.stdout)
                return
            deadline = time.time() + 20
            while not driver.execute_script("return !!window.horde") and time.time() < deadline:
                time.sleep(0.1)
            result = {"loaded": driver.execute_script("return !!window.horde")}
            result["charts"] = painted_charts(driver)
            result["data"] = driver.execute_script("return window.horde && window.horde.data")
            result["table"] = driver.execute_script(TABLE)
            result["pwned"] = driver.execute_script("return window.pwned === undefined ? null : window.pwned")
            result["exit_code_text"] = driver.find_element(By.ID, "exit-code").text
            result["controls_shown"] = driver.find_element(By.ID, "controls").is_displayed()
            if screenshot:
                driver.save_screenshot(screenshot)
            # Drag across the middle of the requests chart: a time range.
            over = driver.find_element(By.CSS_SELECTOR, "#chart-rps .u-over")
            width = over.size["width"]
            actions = ActionChains(driver)
            actions.move_to_element_with_offset(over, int(-width * 0.15), 0).click_and_hold()
            actions.move_by_offset(int(width * 0.3), 0).release().perform()
            time.sleep(0.3)
            result["range_label"] = driver.find_element(By.ID, "range-label").text
            result["range_table"] = driver.execute_script(TABLE)
            # Sorting by a column (twice: descending by count).
            header = driver.find_element(By.CSS_SELECTOR, '#stats th[data-key="count"]')
            header.click()
            result["sorted_table"] = driver.execute_script(TABLE)
            result["console"] = [
                entry for entry in driver.get_log("browser") if entry.get("level") == "SEVERE"
            ]
            requests = []
            for entry in driver.get_log("performance"):
                message = json.loads(entry["message"])["message"]
                if message.get("method") == "Network.requestWillBeSent":
                    requests.append(message["params"]["request"]["url"])
            result["requests"] = requests
        finally:
            driver.quit()
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
