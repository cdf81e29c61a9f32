"""The JSON API over kb services (``api.main.create_api_app``; routes in api/routes).

The whole app, with the HTML pages, is composed in ``web.app.create_app``.
"""
