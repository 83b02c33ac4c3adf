// nginx in front of a fleet of replicas with prefix affinity: requests that share a prompt prefix go to the
// same replica, whose prefix cache holds it. The key is the client's X-Session-ID header when sent, else
// the first 512 characters of the first chat message (usually the system prompt) or of the prompt,
// computed by a small njs script (nginx's JavaScript module) from the request body; `hash ... consistent`
// (ketama) maps it to a replica, so adding or removing one moves only its share of the keys. A replica that
// refuses connections or fails is skipped for `fail_timeout` (passive health checks) and its requests go to
// the next one; a POST already sent is never retried elsewhere (nginx's default for non-idempotent
// requests), so no request is generated twice. Responses are not buffered, so SSE streams pass through.

package enum FleetNginx {
    /// The njs module that computes the affinity key.
    package static let script = """
        // tally's prefix-affinity key for nginx (tally fleet nginx): X-Session-ID when the client sends one, else
        // the first 512 characters of the first chat message (usually the system prompt) or of the prompt.
        function key(r) {
            var session = r.headersIn['X-Session-ID'];
            if (session) return 'session:' + session;
            var body;
            try { body = JSON.parse(r.requestText || ''); } catch (e) { return ''; }
            if (body === null || typeof body !== 'object') return '';
            var text = '';
            if (Array.isArray(body.messages) && body.messages.length > 0 && body.messages[0] !== null) {
                var content = body.messages[0].content;
                text = typeof content === 'string' ? content : JSON.stringify(content);
            } else if (typeof body.prompt === 'string') {
                text = body.prompt;
            } else if (Array.isArray(body.prompt)) {
                text = JSON.stringify(body.prompt.slice(0, 128));
            }
            return (text || '').slice(0, 512);
        }
        export default { key };

        """

    /// nginx.conf for `nginx -p DIR -c nginx.conf -e logs/error.log`: every path is relative to DIR.
    /// `affinity` false balances round-robin instead (no key): the baseline the affinity is measured against.
    package static func config(_ targets: [FleetPrometheus.Target], listen: String, jsModule: String,
                               failTimeoutSeconds: Int = 10, affinity: Bool = true) -> String {
        let servers = targets.map { "        server \($0.address) max_fails=1 fail_timeout=\(failTimeoutSeconds)s;  # \($0.name)" }
        return """
            # nginx in front of tally replicas with prefix affinity (tally fleet nginx). Run: nginx -p DIR -c nginx.conf -e logs/error.log
            load_module \(jsModule);
            worker_processes 1;
            pid logs/nginx.pid;
            error_log logs/error.log warn;
            events { worker_connections 4096; }
            http {
                access_log off;
                client_body_temp_path tmp/body;
                proxy_temp_path tmp/proxy;
                fastcgi_temp_path tmp/fastcgi;
                uwsgi_temp_path tmp/uwsgi;
                scgi_temp_path tmp/scgi;
                # The whole body is read into one buffer before a replica is chosen: the key comes from it.
                client_max_body_size 4m;
                client_body_buffer_size 4m;
                client_body_in_single_buffer on;
                js_path .;
                js_import prefix from tally_prefix.js;
                js_set $tally_prefix_key prefix.key;

                upstream tally {
                    \(affinity ? "hash $tally_prefix_key consistent;" : "# round-robin: no prefix affinity")
            \(servers.joined(separator: "\n"))
                    keepalive 32;
                }

                server {
                    listen \(listen);
                    location / {
                        proxy_pass http://tally;
                        proxy_http_version 1.1;
                        proxy_set_header Connection "";
                        proxy_set_header X-Forwarded-For $remote_addr;
                        proxy_request_buffering on;
                        proxy_buffering off;         # SSE chunks go out as the replica writes them
                        proxy_read_timeout 600s;
                        proxy_next_upstream error timeout http_502 http_503;
                        proxy_next_upstream_tries 2;
                    }
                }
            }

            """
    }
}
