# One image for every process of the full deployment: web (daphne), worker, beat and migrate
# (see docker-compose.yml). Settings come from the environment (maintenance_site/settings.py).
# The front-end libraries no Python package ships (package.json; README "Front-end dependencies"): npm ci checks
# each tarball against package-lock.json's integrity hash and runs none of their scripts.
FROM node:20-slim AS frontend
WORKDIR /frontend
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=maintenance_site.settings \
    VAR_DIR=/app/var \
    NODE_MODULES_DIR=/app/node_modules

RUN useradd --system --uid 10001 --user-group --create-home app
WORKDIR /app

# The project goes into site-packages (no dev extras); only manage.py stays in /app.
# VAR_DIR (static files, and the runtime folders settings.py creates) belongs to the app user.
COPY . /tmp/src
RUN pip install /tmp/src \
    && cp /tmp/src/manage.py /app/manage.py \
    && rm -rf /tmp/src \
    && mkdir -p /app/var \
    && SECRET_KEY=compiletranslations-build-only python /app/manage.py compiletranslations --force \
    && chown app:app /app/var

COPY --from=frontend /frontend/node_modules /app/node_modules

# Numeric, so orchestrators can verify the image does not run as root (10001 is "app").
USER 10001:10001

# Static files are collected once, here; whitenoise serves them. DEBUG=false selects the manifest
# storage the running containers use; the SECRET_KEY only lets settings load and is thrown away.
RUN DEBUG=false SECRET_KEY=collectstatic-build-only-not-a-secret python manage.py collectstatic --noinput

EXPOSE 8000
# daphne with 414/431 answers for over-long request lines and headers (maintenance_site/ops/webserver.py);
# chosen over uvicorn and granian on bench/servers.py's figures (README, "Scaling out").
CMD ["python", "-m", "maintenance_site.ops.webserver", "-b", "0.0.0.0", "-p", "8000", "maintenance_site.asgi:application"]
