"""Storage: the port, its adapters, tiers and settings."""
