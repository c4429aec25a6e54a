"""Chat platform adapters: each translates platform events to bot commands and back."""
