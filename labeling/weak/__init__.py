"""Weak supervision in the workspace: the glue between the store and ``weak_supervision``.

``loading`` (LF files and stored rules), ``rules`` (add, edit, delete, switch, preview a rule),
``lock`` (one apply at a time), ``apply`` (run the LFs, store their votes), ``votes`` (read the
votes; when weak labels are stale), ``label_model`` (fit weak labels; LF analysis), ``files``
(weak labels for a data file, for ``simulate --lfs``); ``api`` is the Workspace's part.
"""
