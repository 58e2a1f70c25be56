"""``python -m toolrt.contracts.schemas``: write the file-format schemas again from the domain classes."""

from __future__ import annotations

from toolrt.contracts.schemas import write_schemas

if __name__ == "__main__":
    for path in write_schemas():
        print(path)
