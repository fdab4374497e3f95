// A real S3-speaking server (s3rver, the maintained fork) for the off-site tests, as its own
// process so a test can stop it. Node 20's OpenSSL 3 keeps DES (s3rver's ListObjectsV2 page
// tokens) in the legacy provider, hence --openssl-legacy-provider (tests/helpers/s3-server.ts).
// Prints {"port": n} once it listens. argv: data directory, bucket names...
const S3rver = require("@20minutes/s3rver");

const [dir, ...buckets] = process.argv.slice(2);
const server = new S3rver({
  address: "127.0.0.1",
  port: 0,
  silent: true,
  directory: dir,
  configureBuckets: buckets.map((name) => ({ name })),
});
server.run().then(
  ({ port }) => process.stdout.write(`${JSON.stringify({ port })}\n`),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
