"""One module per panel; each reads top to bottom: build widgets, connect, react to state."""
