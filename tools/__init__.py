"""Programs that measure a real server (run them as scripts: python tools/<name>.py) and what they share."""
