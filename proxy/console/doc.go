// Package console is the admin web console (SPEC 2.5): a static single page
// (HTML, CSS and plain ES modules, no build step) embedded in the binary and
// served at / on the admin listener, over the admin JSON API. It also holds
// the admin listener's cross-site request guard for state-changing calls.
//
// The page keeps the admin token in sessionStorage and sends it as a Bearer
// header: never in a URL or a cookie, and never rendered. The console holds
// no data of its own; everything it shows comes from /admin/api/*.
//
// It imports only the standard library: it must not import payments, store,
// proxy or any other paygate package (it knows the API by its JSON).
package console
