"""``python -m ftpose`` (also what ``torchrun -m ftpose`` runs)."""
from ftpose.cli import main

if __name__ == "__main__":
    main()
