"""The JSON API over kb services (``api.main.create_app`` builds the app; routes in api/routes)."""
