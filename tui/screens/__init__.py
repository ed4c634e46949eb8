"""Screens of the Textual app.

`chat` (with `chat_actions`) is the main screen; `memory` browses, corrects and forgets what
empathos remembers and infers ("forget me" included); the rest are dialogs pushed over them:
`users`, `sessions`, `search`, `settings`, `prompt` and `memory_detail` (details and
confirmations).
"""
