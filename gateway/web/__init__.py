"""The pages people see: feed subscription, a client's own page, connection landings, API docs.

Pages are Jinja2 templates under ``templates/web/`` with their words in
``templates/web/words/<lang>.json`` (English and French), styled and scripted only by files of
``templates/web/assets/`` served from calgate itself: no framework, no third-party request, and
every answer carries the same strict headers (`gateway.web.pages.SECURITY_HEADERS`).
"""
