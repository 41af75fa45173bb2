"""gunicorn entry point: ``gunicorn api.wsgi:app``."""
from api import create_app
from logs import setup_logging
from settings import Settings

settings = Settings.from_env()
setup_logging(settings.log_level, settings.log_format)
app = create_app(settings)
