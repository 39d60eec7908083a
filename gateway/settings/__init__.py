"""Setting groups, one module per feature, composed into `gateway.config.Settings`.

Each group is a pydantic-settings class holding its fields (the description of each field is
its documentation) and their validators; `loading` reads the TOML file and the environment.
Import settings from `gateway.config`, not from here.
"""
