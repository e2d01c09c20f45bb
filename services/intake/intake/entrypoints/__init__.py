"""Outside input: HTTP routes, Kafka commands, the window scheduler."""
