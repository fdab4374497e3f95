import type { Metadata } from "next";
import type { ReactNode } from "react";

export const metadata: Metadata = {
  title: "Tech Support Client Portal",
  description: "Client portal with D1 backups",
};

// No <ClerkProvider>: nothing here renders Clerk's client-side UI. The admin surface (the API and
// the /admin pages) is protected server-side by the middleware, which verifies the session token
// offline; a provider would also make every page it wraps dynamic.
export default function RootLayout({ children }: { children: ReactNode }) {
  return (
    <html lang="en">
      <body style={{ fontFamily: "system-ui, sans-serif", margin: "2rem auto", maxWidth: "64rem", lineHeight: 1.5, padding: "0 1rem" }}>
        {children}
      </body>
    </html>
  );
}
