// One MongoDB user per service database, with readWrite on that database only: a
// service's credentials reach no other service's data (decisions.md §22).
//
// The mongo image runs this once, as root, on the first start of an empty data volume
// (/docker-entrypoint-initdb.d). The passwords come from the container's environment
// (MONGO_<SERVICE>_PASSWORD, set in .env; see .env.example); each service's MONGODB_URL in
// docker-compose.yml names the same user, database and password.
const SERVICES = ["registration", "eligibility", "coding", "claims", "payments", "collections", "audit", "kpis"];

for (const service of SERVICES) {
  const variable = `MONGO_${service.toUpperCase()}_PASSWORD`;
  const password = process.env[variable];
  if (!password) {
    throw new Error(`${variable} is not set: no user for ${service}`);
  }
  const database = `rcm_${service}`;
  db.getSiblingDB(database).createUser({
    user: service,
    pwd: password,
    roles: [{ role: "readWrite", db: database }],
  });
  print(`created user ${service} with readWrite on ${database}`);
}
