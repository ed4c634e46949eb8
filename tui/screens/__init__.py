"""Screens of the Textual app.

`chat` (with `chat_actions`) is the main screen; `memory` (with `memory_actions`) browses,
corrects and forgets what empathos remembers and infers ("forget me" included); the rest are
dialogs pushed over them:
`users`, `sessions`, `search`, `settings`, `prompt` and `memory_detail` (details and
confirmations).

Screens reach the app through `tui.host.Host`, never by importing `tui.app`.
"""
