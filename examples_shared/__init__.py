"""What example_django and example_flask share: the demo GenAI backend (`genai`)."""
