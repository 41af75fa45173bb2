# One image for every process of the stack; the command picks the role (see Procfile).
# Every process runs as the unprivileged user "app" (uid 10001): the code is root's and
# read-only to it; var/ (browser profiles, local state) and its home are all it writes.
FROM python:3.11-slim-bookworm

RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium chromium-driver \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --uid 10001 --user-group --create-home --shell /usr/sbin/nologin app

WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
RUN mkdir -p var && chown app:app var

ENV PYTHONUNBUFFERED=1 \
    CHROMIUM_PATH=/usr/bin/chromium \
    CHROMEDRIVER_PATH=/usr/bin/chromedriver \
    API_BIND=0.0.0.0:3000
USER app
EXPOSE 3000 5555
# gunicorn's control socket gets a path of its own (its default is shared by every
# gunicorn of the user, and a gunicorn that stops deletes it).
CMD ["sh", "-c", "alembic upgrade head && exec gunicorn --config python:api.gunicorn_conf --bind $API_BIND --worker-class gthread --workers 2 --threads 16 --control-socket ${API_CONTROL_SOCKET:-var/run/gunicorn-api.ctl} api.wsgi:app"]
