from payi_web.django.middleware import PayiMiddleware


class CustomPayiMiddleware(PayiMiddleware):
    """A project's subclass: the checks recognise it as PayiMiddleware."""
