# Mosquitto image built offline by tests/cluster/images.sh from the host's
# Debian mosquitto binary (and mosquitto_sub for the healthcheck), laid out
# like the official eclipse-mosquitto:2 image so docker-compose.yml works with
# either: config /mosquitto/config/mosquitto.conf, data /mosquitto/data,
# uid/gid 1883. The build context is a staging directory made by images.sh.
ARG BASE_IMAGE=merklekv-base:offline

FROM scratch AS dirs
WORKDIR /mosquitto/data
WORKDIR /mosquitto/log

FROM ${BASE_IMAGE}
COPY mosquitto /usr/sbin/mosquitto
COPY mosquitto_sub /usr/bin/mosquitto_sub
COPY mosquitto.conf /mosquitto/config/mosquitto.conf
COPY --from=dirs --chown=1883:1883 /mosquitto /mosquitto
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
USER 1883:1883
EXPOSE 1883
VOLUME ["/mosquitto/data"]
CMD ["/usr/sbin/mosquitto", "-c", "/mosquitto/config/mosquitto.conf"]
