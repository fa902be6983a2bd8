"""Text features of the shared engine: chat rendering, images, tool calls and reasoning."""
