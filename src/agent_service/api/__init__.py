"""The HTTP API: app factory, middleware, schemas, routes. The only package importing fastapi."""
