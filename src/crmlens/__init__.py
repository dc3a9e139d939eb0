"""crmlens: customer analytics and segmentation for CRM data.

The main entry point is :class:`crmlens.Workspace`; every CLI command and API endpoint is a
thin shell over its methods.
"""

from crmlens.errors import CrmlensError, InputError, WorkspaceError

__version__ = "0.1.0"

__all__ = ["CrmlensError", "InputError", "Workspace", "WorkspaceError", "__version__"]


def __getattr__(name: str):
    # Imported lazily so `import crmlens` stays cheap for the CLI's --help.
    if name == "Workspace":
        from crmlens.workspace import Workspace

        return Workspace
    raise AttributeError(name)
