"""The console: the built-in web UI, static pages and ES modules on the API's listener."""
