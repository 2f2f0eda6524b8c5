"""Small local servers (127.0.0.1, ephemeral ports) reused by the tests."""

from movielens_assets_tests.servers.static_http import Fault, StaticHTTPServer, serve_static

__all__ = ["Fault", "StaticHTTPServer", "serve_static"]
