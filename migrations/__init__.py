"""The numbered SQL migrations, a package so that an installed wheel carries them.

Only ``NNNN_name.sql`` files live here; ``storage.migrations`` applies them in order.
"""
