# WsWeb: the proxy (8080) and the dashboard + REST API + hub (8081) in one process.
# Build: docker build -t wsweb .    Run: docker compose up (see docker-compose.yml)

FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
# The build runs `npm ci` for the dashboard's libraries (bootstrap, htmx.org, @microsoft/signalr).
RUN apt-get update \
 && apt-get install -y --no-install-recommends nodejs npm \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN dotnet publish src/WsWeb/WsWeb.csproj -c Release -o /app

FROM mcr.microsoft.com/dotnet/aspnet:10.0 AS runtime
WORKDIR /app
COPY --from=build /app .
# The CA key and certificate live in /data: keep it on a volume so clients keep trusting the same CA.
VOLUME /data
EXPOSE 8080 8081
ENTRYPOINT ["dotnet", "WsWeb.dll", "--listen-host", "0.0.0.0", "--web-host", "0.0.0.0", "--data-dir", "/data"]
