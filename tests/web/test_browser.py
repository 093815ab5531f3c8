"""End to end in headless Chromium against the application on waitress: sign in, search, open a
hit; the player starts at the hit's second and the transcript marks the segment being played.
Screenshots go to test-artifacts/."""
from __future__ import annotations


from ..conftest import ARTIFACTS, wait_for


PLAYER_STATE = """
const section = document.getElementById(arguments[0]);
const p = section.querySelector('.player');
const seg = section.querySelector('.seg.current');
return {ready: p.readyState, t: p.currentTime, paused: p.paused, error: p.error && p.error.code,
        current: seg ? parseFloat(seg.dataset.start) : null, text: seg ? seg.textContent : '',
        cues: p.textTracks.length && p.textTracks[0].cues ? p.textTracks[0].cues.length : 0};
"""


def test_sign_in_search_and_play_from_the_hit(server, browser, site, helpers):
    from selenium.webdriver.common.by import By
    browser.get(f"{server}/sessions/{site['session']}")
    assert "/login" in browser.current_url  # pages need a signed-in user
    browser.find_element(By.NAME, "username").send_keys("inspector")
    browser.find_element(By.NAME, "password").send_keys(helpers.PASSWORD)
    browser.find_element(By.CSS_SELECTOR, ".login button[type=submit]").click()
    # the session page, fully loaded: a navigation issued while it still loads can be dropped
    wait_for(lambda: f"/sessions/{site['session']}" in browser.current_url
             and browser.execute_script("return document.readyState") == "complete")

    browser.get(f"{server}/")
    [box] = wait_for(lambda: browser.find_elements(By.ID, "q"))
    box.send_keys("bồi thường")
    box.submit()
    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, ".result .timecode"))
    browser.save_screenshot(str(ARTIFACTS / "web-search.png"))
    link = next(a for a in browser.find_elements(By.CSS_SELECTOR, ".result .timecode")
                if f"/sessions/{site['session']}" in a.get_attribute("href"))
    hit_start = float(link.get_attribute("data-start"))
    spoken = next(s for s in site["segments"] if s["start"] - 0.5 <= hit_start <= s["end"])
    assert "bồi thường" in spoken["text"]
    link.click()

    section = f"rec-{site['recording']}"
    state = wait_for(lambda: (lambda s: s if s["ready"] >= 1 and s["t"] > 0 else None)(
        browser.execute_script(PLAYER_STATE, section)))
    browser.execute_script("document.getElementById(arguments[0]).querySelector('.player').pause();", section)
    state = browser.execute_script(PLAYER_STATE, section)
    assert state["error"] is None
    assert abs(state["t"] - hit_start) <= 1.0, state
    assert state["current"] == spoken["start"] and "bồi thường" in state["text"], state
    assert wait_for(lambda: browser.execute_script(PLAYER_STATE, section)["cues"]) == len(site["segments"])
    browser.save_screenshot(str(ARTIFACTS / "web-session.png"))

    # a click on another segment seeks there and moves the mark
    first = browser.find_elements(By.CSS_SELECTOR, f"#{section} .seg")[0]
    first.find_element(By.CSS_SELECTOR, ".text").click()
    state = wait_for(lambda: (lambda s: s if s["current"] == site["segments"][0]["start"] else None)(
        browser.execute_script(PLAYER_STATE, section)))
    assert abs(state["t"] - site["segments"][0]["start"]) <= 1.0

    messages = [entry["message"] for entry in browser.get_log("browser")]
    assert not [m for m in messages if "Content Security Policy" in m or "Refused" in m], messages
    actions = [e["action"] for e in site["archive"].catalog.audit_entries(actor="inspector")]
    assert {"login", "search", "session.view", "play"} <= set(actions)
