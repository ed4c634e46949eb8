"""Screens of the Textual app.

The long-term memory screen is not here yet: see the EXTENSION POINT notes in `tui/keys.py`
and `tui/screens/chat_actions.py` for where it plugs in.
"""
