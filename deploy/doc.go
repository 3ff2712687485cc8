// Package deploy holds paygate's deployment files, not code: a Docker Compose
// file (paygate, Redis and a placeholder bot), its config
// (config.redis.yaml), and a Kubernetes manifest with paygate as a sidecar of
// a bot, its notify listener behind an Ingress.
//
// Its tests parse those files (there is no Docker engine or cluster in CI),
// check that they agree with each other, with the Dockerfile and with the
// paygate config they carry, and run `paygate check-config` on every config;
// they also prove that scripts/build-image.sh fails when the Dockerfile
// drifts. Nothing imports this package, and it imports nothing of paygate
// outside its tests.
package deploy
