import { PostGraphileAmberPreset } from "postgraphile/presets/amber";
import { makePgService } from "postgraphile/adaptors/pg";
import { PgAggregatesPreset } from "@graphile/pg-aggregates";

/** @type {GraphileConfig.Preset} */
const preset = {
  extends: [PostGraphileAmberPreset, PgAggregatesPreset],
  pgServices: [
    makePgService({
      connectionString: process.env.PGL_URL,
      schemas: ["shop"],
    }),
  ],
  grafserv: { port: Number(process.env.PGL_PORT || 5050), graphiql: false },
  grafast: { explain: false },
};
export default preset;
