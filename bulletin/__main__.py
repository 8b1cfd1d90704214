"""`python -m bulletin` runs the same CLI as the `bulletin` script."""

from bulletin.cli import main

main()
