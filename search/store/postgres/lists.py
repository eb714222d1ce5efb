"""(to be written)"""


class PgListsMixin:
    pass
