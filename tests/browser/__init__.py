"""Browser tests: the real portal in Debian's Chromium, driven by Playwright."""
