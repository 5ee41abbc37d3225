"""CNI support for the testbed: the ``testbed-cni`` plugin and a libcni-like invoker.

The plugin half (``main``, ``plugin``, ``config``, ``ipam``, ``result``, ``netops``,
``ip4``, ``jsonlite``, ``errors``) is imported on every plugin exec, so it must stay
stdlib-only and cheap to import; keep this package ``__init__`` empty of imports.
"""
