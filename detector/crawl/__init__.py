"""The Scrapy project: fetch each domain's pages and hand them to the engine.

Modules: ``spider`` (the ``domains`` spider and its page outcomes), ``middlewares`` (proxy,
cookies, failure classes), ``pipelines`` (detection and storage), ``pool`` and ``worker``
(engine processes), ``items``, ``settings`` (what ``scrapy.cfg`` points at) and ``runner``
(a crawl run from Python).

Importing this package does not import Scrapy: the engine workers live here too.
"""
