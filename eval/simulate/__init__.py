"""Scripted and simulated multi-session conversations (`empathos simulate`): scenario files,
the user simulator, the runner and the summary."""
