"""HTML pages over the same data functions as the API, plus sessions and CSRF (api/security.py)."""
