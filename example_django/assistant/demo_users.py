"""The demo's users: (username, password, account). Passwords for a local demo only."""

DEMO_USERS = [
    ("alice", "alice-demo", "acme"),
    ("bob", "bob-demo", "acme"),
    ("carol", "carol-demo", "globex"),
]
