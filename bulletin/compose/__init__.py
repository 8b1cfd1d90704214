"""Compose stage: an issue folder (issue.toml + NN-<name>.md blocks) becomes a typed `Issue`.

Everything an editor can get wrong is caught here, with file, line and field,
so the render stage can trust what it is given.
"""

from bulletin.compose.blocks import BLOCK_TYPES
from bulletin.compose.issue import Block, Issue
from bulletin.compose.loader import load_issue

__all__ = ["BLOCK_TYPES", "Block", "Issue", "load_issue", "scaffold"]  # scaffold: `issue new`
