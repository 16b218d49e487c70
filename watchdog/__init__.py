"""policy-watchdog: watches the wording of Meta's AI-training and privacy pages and alerts on change."""

__version__ = "0.1.0"
