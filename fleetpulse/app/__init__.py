"""The app: the CLI, config composition, `fleetpulse up` and the status/history/logs
clients. It composes the services; nothing imports it."""
