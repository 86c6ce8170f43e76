"""Example twin of policyengine-us-data (kept import-free for fast startup)."""
