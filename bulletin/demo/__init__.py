"""The whole story in one command: lists, subscribers, an issue, a send and the mail that comes back."""

from bulletin.demo.run import DemoResult, run_demo

__all__ = ["DemoResult", "run_demo"]
