"""Serving: the web app and its static page, and the MLflow pyfunc entry files."""
