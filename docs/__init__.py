"""Documentation tooling: ``docs/screenshots.py`` takes the README's pictures of the Prefect UI."""
