/* The fields of an exchange, each once (after Lua-cURLv3's lcopteasy.h): SV_FIELD(name, KIND), its name the
   request's key in Lua and the member of sv_send in C.  Included once per use, with SV_FIELD defined there:
   transport.h makes sv_send's members of it (SV_MEMBER_<KIND>), the binding (csrc/lua/curl.c) reads a request's
   table by it (SV_READ_<KIND>) and gives the list (starvideos.curl's `fields`), which spec/exchange_fields_spec.lua
   holds nginx's reader (nginx/transport.lua's FIELDS) and the docs' table (docs/architecture.md) to.  Adding a
   field is a row here; the spec then names each place that does not know it yet.

   The kinds: STR (a string or NULL), FLAG (0 or 1), NUM (seconds or bytes, 0 when absent), SIZE (a cap, required),
   and those the binding reads by hand: OP, URL, BODY, RANGE, TAP, CLIENT (a number read with user_agent alone),
   LUA (the Lua side's alone: no member of sv_send). */

/* the verdict's (sv_xfer_exchange): the transport never reads it */
SV_FIELD(op, OP)
SV_FIELD(url, URL)
/* the service's request: "Authorization: Bearer <api_key>" sent (never to another host), its answer's own id,
   rate-limit lines and Date read */
SV_FIELD(service, FLAG)
/* its header lines, each ending in "\n" (no CR), the only ones but Host, User-Agent, the body's length, Range,
   X-Request-Id and the key (none: libcurl's Accept; an empty Content-Type) */
SV_FIELD(headers, STR)
/* GET, HEAD, PUT, POST or DELETE (a body goes with PUT and POST); NULL: GET, or POST with a body */
SV_FIELD(method, STR)
/* the word its messages name it by ("media", "notify"; NULL: "exchange") */
SV_FIELD(what, STR)
/* the answer's header lines kept (sv_exchange's heads) */
SV_FIELD(heads, FLAG)
/* (with range; request.lua asks it of a GET) a 200 to the Range (a host that ignores it: the whole file) is not
   ended at the range's end but held there, paused: sv_xfer_held says so once it finished, and sv_xfer_go_on reads
   the next range from it (one GET for a file's parts); a 206 ends as without it */
SV_FIELD(hold, FLAG)
/* never on a reused connection (a create: see send.c) */
SV_FIELD(fresh, FLAG)
/* seconds for the whole exchange; 0: none */
SV_FIELD(timeout, NUM)
/* seconds without a byte before giving up; 0: none */
SV_FIELD(stall, NUM)
/* > 0.  An answer in memory: a longer one ends as SV_WIRE_GARBLED; a file's body without a length: the most bytes
   its file may hold (read before range, which may lower it) */
SV_FIELD(max_body, SIZE)
/* a 2xx body goes here (never through a symlink) */
SV_FIELD(file, STR)
/* bytes already in file: the rest is asked for with Range (an exchange's: range's first; a 200 to it, the whole
   file: the bytes before offset dropped as they come) */
SV_FIELD(offset, NUM)
/* follow redirects to URLs sv_url_check takes, at most 5 (never with the key) */
SV_FIELD(follow, FLAG)
/* refused, never connected to, when not a public address (sv_addr_private) */
SV_FIELD(public, FLAG)
/* "http://[user:password@]host:port" (sv_proxy_parse): this exchange goes through that proxy (CONNECT for https;
   Basic auth with the credentials).  NULL: libcurl's own choice, from https_proxy / http_proxy / all_proxy /
   no_proxy in the environment. */
SV_FIELD(proxy, STR)
/* sent as "X-Request-Id: <request_id>" (NULL: none); at most SV_REQUEST_ID_MAX bytes, no control character */
SV_FIELD(request_id, STR)
/* The options that stay each client's own (the clients of a key share one transport): the exchange's client's.
   user_agent NULL: all three are the transport's (sv_http_config); ca_file NULL: the system's CAs. */
SV_FIELD(user_agent, STR)
SV_FIELD(ca_file, STR)
SV_FIELD(connect_timeout, CLIENT)
/* a POST's or a PUT's (body_len bytes; body_kept: the caller keeps it alive and unchanged until the exchange ends,
   not copied) */
SV_FIELD(body, BODY)
/* (not a HEAD) bytes offset to offset + max_body - 1 asked (Range), its body cut at max_body (whole: a server that
   ignores Range sends the whole file), from the byte asked or refused (SV_WIRE_GARBLED); without it, a body past
   max_body is garbled */
SV_FIELD(range, RANGE)
/* A GET's body fed to tap as it comes (NULL: none): a 2xx's bytes from offset, those kept, in order; room for
   max_body bytes made at its first byte; SV_TAP_STEP bytes at most in a pass (its hashing bounded).  The caller
   keeps tap alive until the exchange ends. */
SV_FIELD(tap, TAP)
/* the held exchange (a result's `held`) this one goes on with: the binding's (sv_xfer_go_on) */
SV_FIELD(rest, LUA)
/* its 2xx body may come as the pieces read (a list of strings): nginx's; libcurl's body is one buffer */
SV_FIELD(pieces, LUA)
